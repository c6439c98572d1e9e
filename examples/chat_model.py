"""ChatHAG: HAG as a LangChain chat model, where a chat model goes (on the embedded default).

python examples/chat_model.py
"""

from pydantic import BaseModel, Field

from hag_agent import ChatHAG


class Recipe(BaseModel):
    dish: str = Field(description="the dish's name")
    minutes: int = Field(description="how long it takes")


# max_tokens given by name is pinned; HAG chooses the other sampling values for each call.
chat = ChatHAG(max_retries=1, max_tokens=80, seed=7)

if __name__ == "__main__":
    answer = chat.invoke(
        [("system", "You are a concise assistant."), ("user", "Name three colours of the sea.")]
    )
    print(answer.text)
    record = answer.response_metadata["hag"]
    print("task:", record["task"], "stop:", record["stop_reason"])
    print("params:", {k: (p["value"], p["source"]) for k, p in record["params"].items()})
    print("usage over the whole turn:", answer.usage_metadata)

    # Streaming gives the chosen answer's tokens (critique off here: the one attempt's, live).
    for chunk in chat.stream("Write one line about rain.", critique=False):
        print(chunk.text, end="", flush=True)
    print()

    # Structured output: the answer call is held to the schema by llama.cpp's grammar.
    recipe = chat.with_structured_output(Recipe).invoke("A quick pasta dish, as JSON.")
    print(recipe)
