"""The engine: the campaign loop, its stages and what they share (context, campaign
directory, executors, tracking, faults, the review queue and the shortlist)."""
