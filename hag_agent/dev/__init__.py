"""Developer tools: a tiny local model and the servers the integration tests and benchmarks start.

A front end for developers (the top layer): `tiny_llama` builds a random model folder offline,
`server_process` and `vllm_server` start and stop servers on 127.0.0.1. It imports nothing
from hag_agent but itself, so it runs in the vLLM environment too; heavy packages (tokenizers,
torch, transformers) are imported only inside the functions that need them.
"""
