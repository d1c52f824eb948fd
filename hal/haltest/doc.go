// Package haltest holds fakes of the hal interfaces for tests, in the
// periph.io record/playback style.
//
// NewSlot returns the two ends of an in-process virtual card slot: the host
// side (*Slot) implements hal.Slot and hal.Link for cardreader, and the card
// side (*Card) is where a byte-level card simulator sits. A typical
// simulator loop:
//
//	slot, card := haltest.NewSlot(haltest.SlotOptions{Echo: true})
//	go func() {
//		buf := make([]byte, 300)
//		for {
//			n, err := card.Read(buf)
//			switch {
//			case errors.Is(err, haltest.ErrSignal):
//				s, _ := card.NextSignal()
//				if s.Kind != haltest.SignalDeactivate && s.Config.Baud == 9600 {
//					card.Write(atr)
//				}
//				continue
//			case err != nil:
//				return // hal.ErrNoCard, os.ErrClosed, hal.ErrTimeout...
//			}
//			handle(buf[:n], card.LineConfig())
//		}
//	}()
//
// Create the slot inside the testing/synctest bubble that drives it, so its
// timers run on the bubble's clock. The package also has Recorder, a
// gpio.PinIO fake that keeps the history of every level change.
package haltest
