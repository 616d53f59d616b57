"""Imports every domain's tables so that Alembic and the tests see one complete metadata."""

from backend.comparisons import models as comparisons_models  # noqa: F401
from backend.core.database import Base
from backend.crypto import models as crypto_models  # noqa: F401
from backend.datasets import models as datasets_models  # noqa: F401
from backend.identity import models as identity_models  # noqa: F401
from backend.lifecycle import models as lifecycle_models  # noqa: F401
from backend.prompts import models as prompts_models  # noqa: F401
from backend.runs import models as runs_models  # noqa: F401
from backend.safety import models as safety_models  # noqa: F401
from backend.usage import models as usage_models  # noqa: F401
from backend.workspaces import models as workspaces_models  # noqa: F401

metadata = Base.metadata
