"""Server-rendered pages (Jinja2), mobile-first, with no external assets."""

from atm_service.web.routes import router

__all__ = ["router"]
