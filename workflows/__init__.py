"""otcdesk workflows: the trader review queue (and, later, KYC onboarding, risk refresh, surveillance).

`workflows` is also the top-level package of `llama-index-workflows`, which llama-index-core imports
(`from workflows.context import ...`). Both are pkgutil-style namespace portions, so whichever
`__init__` Python finds first, the other's modules stay importable. Keep this file free of code.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
