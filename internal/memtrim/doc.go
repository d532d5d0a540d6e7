// Package memtrim gives back memory that only start-up needed: the pages of Vigil's own
// executable that initialisation touched (package initialisers, type data of libraries that are
// linked in but unused by this config).
package memtrim
