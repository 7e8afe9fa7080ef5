"""normlab.errors: one hierarchy, each class also the matching built-in."""

import pickle

import pytest

from normlab import errors as E


@pytest.mark.parametrize("cls, builtin", [
    (E.NormlabValueError, ValueError), (E.ShapeError, ValueError),
    (E.NormlabTypeError, TypeError), (E.CallOrderError, RuntimeError),
    (E.StateError, ValueError), (E.StateError, KeyError), (E.DataError, ValueError),
    (E.NormlabOSError, OSError), (E.MissingPathError, FileNotFoundError),
    (E.PathExistsError, FileExistsError), (E.NormlabRuntimeError, RuntimeError),
])
def test_every_error_is_a_normlab_error_and_its_builtin(cls, builtin):
    e = cls("owner: expected a, got b.")
    assert isinstance(e, E.NormlabError) and isinstance(e, builtin)
    assert str(e) == "owner: expected a, got b."


def test_state_error_prints_its_message_not_a_key_repr():
    with pytest.raises(KeyError) as info:
        raise E.StateError("load: expected key 'x', got none.")
    assert str(info.value) == "load: expected key 'x', got none."


def test_errors_pickle_round_trip():  # they cross process boundaries (subprocess tests, MPI)
    e = pickle.loads(pickle.dumps(E.ShapeError("f: expected (2,), got (3,).")))
    assert type(e) is E.ShapeError and str(e) == "f: expected (2,), got (3,)."


def test_library_errors_join_the_hierarchy():
    from normlab.data import NotFittedError
    from normlab.train import DivergenceError

    assert issubclass(DivergenceError, E.NormlabError) and issubclass(DivergenceError, RuntimeError)
    assert issubclass(NotFittedError, E.CallOrderError) and issubclass(NotFittedError,
                                                                        AttributeError)
