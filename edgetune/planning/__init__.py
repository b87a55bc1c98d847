"""The bridge from measurements to plans: build the DesignSpace from a graph and the ProfileDB, turn a
search's choice into a Plan, and close the loop by measuring the best plans end to end."""
