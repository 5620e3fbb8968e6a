"""Tests of the suite's own machinery: the guard that keeps its servers on loopback."""
