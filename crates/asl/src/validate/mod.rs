//! Static validation of a state machine definition, the checks AWS runs before creating one.
