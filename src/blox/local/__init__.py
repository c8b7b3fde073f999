"""The local installation that `blox up` composes: moto, the BloxLocal stack, the simulator,
the CSS and the scheduler on one machine.

`stack` creates the BloxLocal CloudFormation stack (queue, dead-letter queue, EventBridge rule,
queue policy) from the template shipped in `templates/`; `errors` holds what it raises. The
composition itself (`compose`, `moto`) imports the services; nothing below blox.cli imports it.
"""

from __future__ import annotations

from blox.local.errors import LocalStackError
from blox.local.stack import StackOutputs, create_local_stack

__all__ = ["LocalStackError", "StackOutputs", "create_local_stack"]
