package controller

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

func keyOf(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

type clientObject = client.Object
