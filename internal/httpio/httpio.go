// Package httpio maps callrec errors to HTTP and writes JSON responses, the
// same way for every component's API.
package httpio

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"callrec"
)

// StatusOf maps an error code to an HTTP status.
func StatusOf(code string) int {
	switch code {
	case callrec.EINVALID:
		return http.StatusBadRequest
	case callrec.ENOTFOUND:
		return http.StatusNotFound
	case callrec.ECONFLICT:
		return http.StatusConflict
	case callrec.EFORBIDDEN:
		return http.StatusForbidden
	case callrec.EUNAUTHENTICATED:
		return http.StatusUnauthorized
	case callrec.ETOOMANY:
		return http.StatusTooManyRequests
	case callrec.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Error writes err as a JSON error. Internal errors are logged with their
// details and shown to the client as a generic message.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := callrec.ErrorCode(err)
	if code == callrec.EINTERNAL {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, callrec.LogKeyErr, err)
	}
	var body ErrorBody
	body.Error.Code, body.Error.Message = code, callrec.ErrorMessage(err)
	JSON(w, StatusOf(code), body)
}

// JSON writes v as a JSON response with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}
