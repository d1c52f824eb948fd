package hal

// WorkParams are the transmission parameters in force once the ATR is read
// and PPS is done, for links whose driver times the card itself (the
// kernel smartcard driver behind /dev/sciN). Times are in elementary time
// units.
type WorkParams struct {
	Protocol int // T=0 or T=1
	F, D     int // clock rate conversion and baud rate adjustment in force
	// WWT is the T=0 work waiting time; CWT and BWT are the T=1 character
	// and block waiting times.
	WWT, CWT, BWT int
	// EGT is the extra guard time N (TC1).
	EGT int
	// CRC says the T=1 error detection code is a CRC (else LRC).
	CRC bool
}

// WorkParamsSetter is implemented by links that need WorkParams; cardreader
// calls it after activation, before the first command.
type WorkParamsSetter interface {
	SetWorkParams(p WorkParams) error
}
