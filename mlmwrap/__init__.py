"""mlmwrap: multilevel models written as level-1 and level-2 equations."""
