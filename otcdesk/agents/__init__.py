"""otcdesk agents package."""
