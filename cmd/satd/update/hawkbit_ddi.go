package update

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file holds the Eclipse hawkBit Direct Device Integration (DDI) API
// documents satd reads and writes, and their parsers. Every parser gets
// bytes from the network: it never panics, and its errors name the URL and
// the field at fault.

// maxDDIBody bounds every DDI response body that is read into memory.
const maxDDIBody = 1 << 20

// ddiTimeLayout is DDI's "YYYYMMDDTHHMMSS" time format (UTC).
const ddiTimeLayout = "20060102T150405"

// ErrDDI means a hawkBit server answered with a document satd cannot use:
// malformed JSON, a missing or invalid field.
var ErrDDI = errors.New("invalid hawkBit DDI response")

// ErrArtifactMismatch means the artifacts of a hawkBit deployment do not
// match the signed manifest: the payload is missing, or its size or SHA-256
// as announced by hawkBit differs from the manifest's.
var ErrArtifactMismatch = errors.New("hawkBit artifact does not match the signed manifest")

// ddiLink is a HAL link, {"href": "…"}.
type ddiLink struct {
	Href string `json:"href"`
}

// ddiControllerBase is the answer to a poll, GET {base}.
type ddiControllerBase struct {
	Config struct {
		Polling struct {
			Sleep string `json:"sleep"`
		} `json:"polling"`
	} `json:"config"`
	Links struct {
		DeploymentBase ddiLink `json:"deploymentBase"`
		ConfigData     ddiLink `json:"configData"`
		CancelAction   ddiLink `json:"cancelAction"`
	} `json:"_links"`

	sleep time.Duration
}

// ddiDeploymentBase is the answer to GET of the deploymentBase link.
type ddiDeploymentBase struct {
	ID         string `json:"id"`
	Deployment struct {
		Download          string     `json:"download"`
		Update            string     `json:"update"`
		MaintenanceWindow string     `json:"maintenanceWindow"`
		Chunks            []ddiChunk `json:"chunks"`
	} `json:"deployment"`
}

// ddiChunk is one software module of a deployment.
type ddiChunk struct {
	Part      string        `json:"part"`
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Artifacts []ddiArtifact `json:"artifacts"`
}

// ddiArtifact is one file of a software module.
type ddiArtifact struct {
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	Hashes   struct {
		SHA1   string `json:"sha1"`
		MD5    string `json:"md5"`
		SHA256 string `json:"sha256"`
	} `json:"hashes"`
	Links struct {
		Download     ddiLink `json:"download"`
		DownloadHTTP ddiLink `json:"download-http"`
	} `json:"_links"`
}

// ddiCancelAction is the answer to GET of the cancelAction link.
type ddiCancelAction struct {
	ID           string `json:"id"`
	CancelAction struct {
		StopID string `json:"stopId"`
	} `json:"cancelAction"`
}

// ddiFeedback is the body of an action feedback POST.
type ddiFeedback struct {
	ID     string            `json:"id"`
	Time   string            `json:"time"`
	Status ddiFeedbackStatus `json:"status"`
}

type ddiFeedbackStatus struct {
	Execution string            `json:"execution"`
	Result    ddiFeedbackResult `json:"result"`
	Details   []string          `json:"details,omitempty"`
}

type ddiFeedbackResult struct {
	Finished string       `json:"finished"`
	Progress *ddiProgress `json:"progress,omitempty"`
}

type ddiProgress struct {
	Cnt int `json:"cnt"`
	Of  int `json:"of"`
}

// ddiConfigData is the body of the configData PUT.
type ddiConfigData struct {
	Mode string            `json:"mode"`
	Data map[string]string `json:"data"`
}

// The DDI execution states and results satd sends.
const (
	execProceeding = "proceeding"
	execDownloaded = "downloaded"
	execClosed     = "closed"
	execRejected   = "rejected"

	finishedNone    = "none"
	finishedSuccess = "success"
	finishedFailure = "failure"
)

// The DDI deployment handling types.
const (
	handlingSkip    = "skip"
	handlingAttempt = "attempt"
	handlingForced  = "forced"
)

// newFeedback builds a feedback body stamped with now (UTC).
func newFeedback(id, execution, finished string, now time.Time, details ...string) ddiFeedback {
	return ddiFeedback{ID: id, Time: now.UTC().Format(ddiTimeLayout),
		Status: ddiFeedbackStatus{Execution: execution, Result: ddiFeedbackResult{Finished: finished}, Details: details}}
}

// decodeDDI unmarshals a DDI document, naming url and the field of a type
// error.
func decodeDDI(url string, body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("%s: %w: field %s: %s is not a %s", url, ErrDDI, te.Field, te.Value, te.Type)
	default:
		return fmt.Errorf("%s: %w: %v", url, ErrDDI, err)
	}
}

func fieldError(url, field, msg string) error {
	return fmt.Errorf("%s: %w: field %s: %s", url, ErrDDI, field, msg)
}

// parseControllerBase parses the answer to a poll.
func parseControllerBase(url string, body []byte) (*ddiControllerBase, error) {
	var c ddiControllerBase
	if err := decodeDDI(url, body, &c); err != nil {
		return nil, err
	}
	d, err := parsePollingSleep(c.Config.Polling.Sleep)
	if err != nil {
		return nil, fieldError(url, "config.polling.sleep", err.Error())
	}
	c.sleep = d
	return &c, nil
}

// parsePollingSleep parses DDI's "HH:MM:SS" polling interval.
func parsePollingSleep(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("%q is not HH:MM:SS", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || len(p) < 2 || (i > 0 && v > 59) || v > 9999 {
			return 0, fmt.Errorf("%q is not HH:MM:SS", s)
		}
		n[i] = v
	}
	d := time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second
	if d == 0 {
		return 0, fmt.Errorf("%q: zero interval", s)
	}
	return d, nil
}

// parseDeploymentBase parses a deployment and checks every field satd uses.
func parseDeploymentBase(url string, body []byte) (*ddiDeploymentBase, error) {
	var d ddiDeploymentBase
	if err := decodeDDI(url, body, &d); err != nil {
		return nil, err
	}
	if d.ID == "" {
		return nil, fieldError(url, "id", "missing")
	}
	dep := &d.Deployment
	if !validHandling(dep.Download) {
		return nil, fieldError(url, "deployment.download", fmt.Sprintf("%q: want skip, attempt or forced", dep.Download))
	}
	if !validHandling(dep.Update) {
		return nil, fieldError(url, "deployment.update", fmt.Sprintf("%q: want skip, attempt or forced", dep.Update))
	}
	if w := dep.MaintenanceWindow; w != "" && w != "available" && w != "unavailable" {
		return nil, fieldError(url, "deployment.maintenanceWindow", fmt.Sprintf("%q: want available or unavailable", w))
	}
	for i, c := range dep.Chunks {
		for j, a := range c.Artifacts {
			if err := a.check(); err != nil {
				return nil, fieldError(url, fmt.Sprintf("deployment.chunks[%d].artifacts[%d].%s", i, j, err.field), err.msg)
			}
		}
	}
	return &d, nil
}

func validHandling(s string) bool {
	return s == handlingSkip || s == handlingAttempt || s == handlingForced
}

type artifactError struct{ field, msg string }

func (a *ddiArtifact) check() *artifactError {
	if a.Filename == "" || strings.ContainsAny(a.Filename, "/\\") {
		return &artifactError{"filename", fmt.Sprintf("%q is not a file name", a.Filename)}
	}
	if a.Size < 0 {
		return &artifactError{"size", fmt.Sprintf("%d is negative", a.Size)}
	}
	if d, err := hex.DecodeString(a.Hashes.SHA256); a.Hashes.SHA256 != "" && (err != nil || len(d) != 32) {
		return &artifactError{"hashes.sha256", fmt.Sprintf("%q: want 64 hex digits", a.Hashes.SHA256)}
	}
	if a.href() == "" {
		return &artifactError{"_links.download", "missing"}
	}
	return nil
}

// href is the artifact's download link, HTTPS preferred.
func (a *ddiArtifact) href() string {
	if a.Links.Download.Href != "" {
		return a.Links.Download.Href
	}
	return a.Links.DownloadHTTP.Href
}

// artifact finds the artifact called name in any chunk.
func (d *ddiDeploymentBase) artifact(name string) *ddiArtifact {
	for i := range d.Deployment.Chunks {
		for j := range d.Deployment.Chunks[i].Artifacts {
			if a := &d.Deployment.Chunks[i].Artifacts[j]; a.Filename == name {
				return a
			}
		}
	}
	return nil
}

// parseCancelAction parses a cancel request.
func parseCancelAction(url string, body []byte) (*ddiCancelAction, error) {
	var c ddiCancelAction
	if err := decodeDDI(url, body, &c); err != nil {
		return nil, err
	}
	if c.ID == "" {
		return nil, fieldError(url, "id", "missing")
	}
	if c.CancelAction.StopID == "" {
		return nil, fieldError(url, "cancelAction.stopId", "missing")
	}
	return &c, nil
}
