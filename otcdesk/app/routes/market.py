"""Routes: see `app.routes`."""


def register(router, *, demo: bool) -> None:
    """No routes yet."""
