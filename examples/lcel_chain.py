"""HAGRunnable inside an LCEL chain: prompt | HAG | parser, on the embedded default.

python examples/lcel_chain.py
"""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from hag_agent import HAGRunnable

prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a concise assistant."), ("user", "{question}")]
)
hag = HAGRunnable(max_retries=1, seed=7, params={"max_tokens": 120})
chain = prompt | hag | StrOutputParser()

if __name__ == "__main__":
    print(chain.invoke({"question": "Write a two-line poem about coffee."}))
    # The full record is on the HAGResult when the parser is left off:
    result = (prompt | hag).invoke({"question": "What is 9 * 8?"})
    print(result.text)
    print("task:", result.task, "params:", result.params, "stop:", result.stop_reason)
