"""otcdesk pricing_engine package."""
