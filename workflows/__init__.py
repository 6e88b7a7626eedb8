"""otcdesk workflows package."""
