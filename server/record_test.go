package server

import "testing"

func TestLogURIDropsTheToken(t *testing.T) {
	for uri, want := range map[string]string{
		"/room/7":                              "/room/7",
		"/room/7?lang=en":                      "/room/7?lang=en",
		"/room/7?access_token=eyJ.x.y":         "/room/7",
		"/room/7?lang=en&access_token=eyJ&q=1": "/room/7?lang=en&q=1",
	} {
		if got := logURI(uri); got != want {
			t.Errorf("logURI(%q) = %q, want %q", uri, got, want)
		}
	}
}
