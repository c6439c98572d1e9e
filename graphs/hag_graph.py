"""LangGraph server entry point: the compiled HAG graph (see langgraph.json beside this file)."""

from hag_agent.graph import graph

__all__ = ["graph"]
