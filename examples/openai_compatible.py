"""The same script against OpenAI or any OpenAI-compatible server: only the config changes.

# OpenAI: export OPENAI_API_KEY=...; then
python examples/openai_compatible.py examples/openai.toml
# a local server (vLLM, Ollama, LM Studio, mmbridge serve): set base_url in the [providers] table
python examples/openai_compatible.py my-local.toml
"""

from __future__ import annotations

import sys

from mmbridge import Client, MMBridgeError


def main(config_path: str, image: str = "examples/shapes.png") -> None:
    try:
        with Client.from_config(config_path) as client:
            answer = client.ask(image, "What color is the circle?")
            verdict = client.verify(image, "the circle is left of the square")
            caption = client.caption(image)
    except MMBridgeError as exc:
        sys.exit(f"error: {exc}")
    print(f"answer:  {answer.answer}  ({answer.model}, {answer.latency_s:.2f} s, ${answer.usage.cost_usd or 0:.6f})")
    print(f"verify:  {verdict.label}")
    print(f"caption: {caption.text}")


if __name__ == "__main__":
    main(*sys.argv[1:])
