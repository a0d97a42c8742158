package landlock

// The values of linux/landlock.h, spelled out so that the protections
// table is data on every system the module is built for (rights_test.go
// checks them against golang.org/x/sys/unix).

// Filesystem access rights and the ABI that introduced them.
const (
	FSExecute    = 0x1
	FSWriteFile  = 0x2
	FSReadFile   = 0x4
	FSReadDir    = 0x8
	FSRemoveDir  = 0x10
	FSRemoveFile = 0x20
	FSMakeChar   = 0x40
	FSMakeDir    = 0x80
	FSMakeReg    = 0x100
	FSMakeSock   = 0x200
	FSMakeFifo   = 0x400
	FSMakeBlock  = 0x800
	FSMakeSym    = 0x1000
	FSRefer      = 0x2000 // ABI 2
	FSTruncate   = 0x4000 // ABI 3
	FSIoctlDev   = 0x8000 // ABI 5

	// FSRead is what a read grant allows: run, read files, list directories.
	FSRead = FSExecute | FSReadFile | FSReadDir

	// fsV1 is every right of ABI 1.
	fsV1 = FSExecute | FSWriteFile | FSReadFile | FSReadDir | FSRemoveDir | FSRemoveFile |
		FSMakeChar | FSMakeDir | FSMakeReg | FSMakeSock | FSMakeFifo | FSMakeBlock | FSMakeSym

	// fsFileRights are the rights that mean something on a non-directory;
	// the kernel refuses a rule on a file that names any other.
	fsFileRights = FSExecute | FSWriteFile | FSReadFile | FSTruncate | FSIoctlDev
)

// Network access rights (ABI 4).
const (
	NetBindTCP    = 0x1
	NetConnectTCP = 0x2
)

// IPC scopes (ABI 6).
const (
	ScopeAbstractUnixSocket = 0x1
	ScopeSignal             = 0x2
)
