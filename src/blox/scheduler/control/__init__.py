"""The imperative shell around `plan/`: the informer (CSS list + watch), the starts in flight
(kept in the store) and the controller that plans and acts."""

__all__: list[str] = []
