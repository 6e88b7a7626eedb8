"""otcdesk bots package."""
