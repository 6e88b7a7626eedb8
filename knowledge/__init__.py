"""otcdesk knowledge package."""
