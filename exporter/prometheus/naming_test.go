package prometheus

import "testing"

func TestBuildName(t *testing.T) {
	f := func(name, unit, namespace string, suffixes, counter, gauge bool, want string) {
		t.Helper()
		if got := buildName(name, unit, namespace, suffixes, counter, gauge); got != want {
			t.Errorf("buildName(%q, %q, %q, suffixes=%v, counter=%v, gauge=%v) = %q, want %q",
				name, unit, namespace, suffixes, counter, gauge, got, want)
		}
	}
	f("http.server.duration", "s", "", true, false, false, "http_server_duration_seconds")
	f("http.server.duration", "s", "", false, false, false, "http_server_duration")
	f("http.server.duration_seconds", "s", "", true, false, false, "http_server_duration_seconds")
	f("requests", "1", "", true, true, false, "requests_total")
	f("requests_total", "1", "", true, true, false, "requests_total")
	f("requests", "{request}", "", true, true, false, "requests_total")
	f("cpu.utilization", "1", "", true, false, true, "cpu_utilization_ratio")
	f("cpu.utilization", "1", "", false, false, true, "cpu_utilization")
	f("memory.usage", "By", "", true, false, true, "memory_usage_bytes")
	f("sent", "By", "", true, true, false, "sent_bytes_total")
	f("throughput", "By/s", "", true, false, true, "throughput_bytes_per_second")
	f("rate", "{packets}/s", "", true, false, true, "rate_per_second")
	f("temp", "Cel", "", true, false, true, "temp_celsius")
	f("odd", "furlong", "", true, false, true, "odd_furlong")
	f("x", "m/mo", "", true, false, true, "x_meters_per_month")
	f("queue.size", "", "vigil", true, false, true, "vigil_queue_size")
	f("2xx.count", "", "", true, true, false, "_2xx_count_total")
	f("a..b--c", "", "", true, false, true, "a_b_c")
	f("ns:sub.name", "", "", true, false, true, "ns:sub_name")
	f("résumé", "", "", true, false, true, "r_sum_")
}

func TestLabelName(t *testing.T) {
	f := func(key, want string) {
		t.Helper()
		if got := labelName(key); got != want {
			t.Errorf("labelName(%q) = %q, want %q", key, got, want)
		}
	}
	f("http.method", "http_method")
	f("host-name", "host_name")
	f("2fa", "key_2fa")
	f("__name__", "key__name__")
	f("_private", "_private")
	f("a:b", "a_b")
	f("", "")
	f("ok_1", "ok_1")
}

func TestSanitizeMetricName(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := sanitizeMetricName(in); got != want {
			t.Errorf("sanitizeMetricName(%q) = %q, want %q", in, got, want)
		}
	}
	f("a.b.c", "a_b_c")
	f("a__b", "a_b")
	f("9lives", "_9lives")
	f("job:rate5m", "job:rate5m")
	f("", "")
}
