//! sluice-plot
