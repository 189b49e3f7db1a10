"""Org resources: agents, workflows, connections and teams."""
