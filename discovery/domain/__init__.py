"""The domain layer: the science of crystal discovery as pure functions and typed records
(hulls, energy corrections, references, acquisition, collapse guards, generation). It knows
nothing of campaigns, the store, MLflow or the config file."""
