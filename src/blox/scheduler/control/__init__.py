"""The imperative shell around `plan/`: the informer (CSS list + watch, its observed state kept
as planner values by `cache`), the starts in flight (kept in the store), the executor (ECS calls,
bounded and concurrent) and the controller that plans and acts."""

__all__: list[str] = []
