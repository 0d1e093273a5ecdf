"""Candidate generation: generators yield records; filters and de-duplication decide what
stays. The config-driven wiring of generators lives in discovery.engine.candidate_generation."""
