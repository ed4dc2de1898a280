"""Comparing two machines (Mikulik et al. 2020): behaviour, simulation maps, convergence."""
