"""otcdesk workflows: state machines and schedules as tables (the trader review queue; later order and trade
lifecycle, KYC onboarding, risk refresh, surveillance).

Installed as `otcdesk.workflows`, so it never collides with llama-index-workflows' top-level `workflows`.
"""
