"""Queue: knocks, the waiting room per department, admission and the expected wait."""
