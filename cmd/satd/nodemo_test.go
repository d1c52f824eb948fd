//go:build satd_nodemo

package main

import (
	"satd.dev/satd/cardreader/cardsim/personality"
	"satd.dev/satd/hal/haltest"
)

// A release build (satd_nodemo) has no simulated cards: the tests that
// reach for one find none (see readers_sim.go for the real accessors).

func (c *cardSource) simCard() *haltest.Card { return nil }

func (c *cardSource) simMode(personality.Mode) bool { return false }
