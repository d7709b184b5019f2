//! Autoscaler: sizes the worker pools by Little's law from measured rate and service time (issue 4).
