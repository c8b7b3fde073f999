"""blox-ecs: a cluster manager for Amazon ECS (Blox v0.3 compatible)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
