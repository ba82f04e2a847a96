"""Import every domain's ORM models so Base.metadata knows all tables (Alembic, tests)."""


def load_all() -> None:
    from app.audit import models as _audit  # noqa: F401
    from app.auth import models as _auth  # noqa: F401
    from app.calls import models as _calls  # noqa: F401
    from app.cases import models as _cases  # noqa: F401
    from app.clues import models as _clues  # noqa: F401
    from app.enterprises import models as _enterprises  # noqa: F401
    from app.notifications import models as _notifications  # noqa: F401
    from app.recordings import models as _recordings  # noqa: F401
    from app.reports import models as _reports  # noqa: F401
    from app.search import models as _search  # noqa: F401
    from app.taxonomy import models as _taxonomy  # noqa: F401
    from app.transcripts import models as _transcripts  # noqa: F401
    from app.users import models as _users  # noqa: F401
    from app.warnings import models as _warnings  # noqa: F401
