//! Placeholder: the Worker arrives with the edge issue.
