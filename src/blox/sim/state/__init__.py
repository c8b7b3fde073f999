"""The simulator's state: pure resources and transitions under an injected clock."""
