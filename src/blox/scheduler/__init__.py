"""blox.scheduler: the daemon scheduler (issue 6), one task of an environment on every matching
container instance of a cluster.

Inside the box, dependencies point one way: `service → api | control → environments → plan`.
`plan/` is the functional core (pure: no asyncio, no I/O, no clock reads); the control loop,
the executor and the REST API are the shell around it.
"""
