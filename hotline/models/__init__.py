"""The hotline's tables. One module per area; everything is importable from here."""

from hotline.models.core import *  # noqa: F401,F403
from hotline.models.core import Base, insert_for, utcnow, to_minute  # noqa: F401
from hotline.models.followups import *  # noqa: F401,F403
from hotline.models.dashboard import *  # noqa: F401,F403
from hotline.models.retention import *  # noqa: F401,F403
from hotline.models.stats_days import *  # noqa: F401,F403
from hotline.models.messages import *  # noqa: F401,F403
from hotline.models.training import *  # noqa: F401,F403
from hotline.models.debriefs import *  # noqa: F401,F403
from hotline.models.outreach import *  # noqa: F401,F403
from hotline.models.alerts import *  # noqa: F401,F403
from hotline.models.program_inputs import *  # noqa: F401,F403
from hotline.models.pulse import *  # noqa: F401,F403
