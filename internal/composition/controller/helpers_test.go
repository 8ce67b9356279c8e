package controller_test

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/composition/controller"
)

func controllerXRName(ns, name string) string { return controller.XRName(ns, name) }

func metav1ObjectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
