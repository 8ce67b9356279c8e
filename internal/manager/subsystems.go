package manager

// subsystems is every part of Strata that runs in the manager, in the order
// it is set up. A new capability adds one entry here and nowhere else.
var subsystems = []Subsystem{}
