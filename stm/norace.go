//go:build !race

package stm

func raceRelease() {}
func raceAcquire() {}
