"""otcdesk app package."""
