"""dclib.utils."""


def test_timed_fit_counts_the_fit_and_returns_seconds():
    import time

    from dclib.utils import timed_fit

    class Sleeper:
        fitted = None

        def fit(self, X):
            time.sleep(0.05)
            self.fitted = X
            return self

    model = Sleeper()
    seconds = timed_fit(model, [1, 2, 3], "cpu")
    assert model.fitted == [1, 2, 3] and 0.05 <= seconds < 5.0
