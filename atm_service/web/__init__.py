"""Server-rendered pages (Jinja2), mobile-first, with no external assets."""

from atm_service.web import board_pages, cash_pages, engineer_pages, lock_pages, recon_pages
from atm_service.web.routes import router

router.include_router(engineer_pages.router)
router.include_router(board_pages.router)
router.include_router(lock_pages.router)
router.include_router(recon_pages.router)
router.include_router(cash_pages.router)

__all__ = ["router"]
