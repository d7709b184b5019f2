//! The writer's loop against a fake database.
