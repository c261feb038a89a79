"""The wire contract: request and response bodies, widget side and team side."""

from hal.schemas.batch import *  # noqa: F403
from hal.schemas.team import *  # noqa: F403
from hal.schemas.widget import *  # noqa: F403
