package balancer

import (
	"fmt"
	"testing"
)

// benchRig builds n valid readers whose stats tables each hold entries
// other keys besides K.
func benchRig(b *testing.B, n, entries int) *rig {
	c := baseline()
	c.StatEntries = entries + 1
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("r%02d", i)
	}
	r := newRig(b, c, names...)
	for ri := range r.d.readers {
		t := &r.d.readers[ri].stats
		for i := 0; i < entries; i++ {
			k := statKey{caid: 0x0963, prid: uint32(i >> 16), srvid: uint16(i), chid: 1, ecmlen: 140}
			e := &t.entries[t.create(k, 0)]
			e.count, e.avg = 10, 100
		}
		e := &t.entries[t.create(keyK, 0)]
		e.count, e.avg = 10, int32(100+ri*7%50)
	}
	for _, fr := range r.readers {
		fr.reqs = nil
	}
	r.client.answers = nil
	return r
}

// BenchmarkSelect measures eligibility and selection (OSCam's
// stat_get_best_reader) for one ECM.
func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		for _, entries := range []int{1000, 100000} {
			r := benchRig(b, n, entries) // built once, not per b.N round
			b.Run(fmt.Sprintf("readers=%d/entries=%d", n, entries), func(b *testing.B) {
				e := &r.d.ecms[0]
				e.caid, e.srvid, e.ecmlen = 0x0963, 0x1234, 140
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r.d.match(e)
					r.d.selectBest(e, 1000)
				}
			})
		}
	}
}

// BenchmarkECMPath measures one ECM from arrival to CW delivered and
// stats recorded, with in-process readers, including the timer pass that
// releases it.
func BenchmarkECMPath(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		r := benchRig(b, n, 1000)
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			data := make([]byte, 140)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ecmPath(r, data, i)
			}
		})
	}
}
